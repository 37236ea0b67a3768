import { useEffect, useState } from 'preact/hooks';

import { createBranch } from '../api/history';
import { Confirm, useNotice } from '../ui';

export interface BranchTarget {
  versionId: string;
  /** How the version is named to the user ("#4 on main"). */
  label: string;
}

/**
 * "Branch from here": asks for the new branch's name and creates it from the version
 * (`POST …/branches` with `parent_version_id`). `onCreated` gets the new branch's id.
 */
export function BranchFromVersion({
  agentId,
  target,
  onClose,
  onCreated,
}: {
  agentId: string;
  target: BranchTarget | undefined;
  onClose: () => void;
  onCreated: (branchId: string, name: string) => void;
}) {
  const notices = useNotice();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  useEffect(() => {
    setName('');
    setDescription('');
  }, [target?.versionId]);
  const create = async () => {
    const created = await createBranch(agentId, { parent_version_id: target!.versionId, name: name.trim(), description: description.trim() });
    notices.success(`Branch “${name.trim()}” created from ${target!.label}`);
    onCreated(created.created_branch_id, name.trim());
  };
  return (
    <Confirm open={target !== undefined} title={`New branch from ${target?.label ?? ''}`} confirmLabel="Create branch" onConfirm={create} onClose={onClose}>
      <div class="stacked-fields">
        <label>
          <span>Branch name</span>
          <input type="text" name="branch-name" value={name} required maxLength={140} onInput={(event) => setName(event.currentTarget.value)} />
        </label>
        <label>
          <span>Description (optional)</span>
          <input type="text" name="branch-description" value={description} maxLength={4096} onInput={(event) => setDescription(event.currentTarget.value)} />
        </label>
      </div>
    </Confirm>
  );
}
