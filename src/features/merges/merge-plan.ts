import type { Kysely } from 'kysely';

import { isLarge, offload } from '../../compute/offload.js';
import type { AppContext } from '../../context.js';
import type { Database } from '../../db/schema.js';
import type { SeqRange } from '../../domain/frontier.js';
import type { Side } from '../../domain/three-way-merge.js';
import { ConflictError, RequestValidationError } from '../../errors.js';
import { type AgentDocument, emptyDocument, proceduresOf, sameVisibleDocument } from '../agents/agent-document.js';
import { strayProcedureVersions } from '../procedures/procedure-sets.js';
import type { AgentRow } from '../agents/agents.store.js';
import { type BranchRow, branchesStore } from '../branches/branches.store.js';
import { type DocumentStore, loadDocument, type PreparedDocument } from '../versions/documents.store.js';
import { compareVersions } from '../versions/history.js';
import { type VersionRow, versionsStore } from '../versions/versions.store.js';
import { defaultWinner, type FieldConflict, mergeAndFill, type ResolutionInput, type ResolutionsLocation } from './merge-documents.js';

export { type FieldConflict, overriddenFields, type ResolutionInput, type ResolutionsLocation, type Section } from './merge-documents.js';

export interface MergePlan {
  sourceHead: VersionRow;
  targetHead: VersionRow;
  base: VersionRow | undefined;
  /** Versions of the source that the target does not have, as ranges of branches. */
  aheadRanges: SeqRange[];
  document: AgentDocument;
  prepared: PreparedDocument;
  conflicts: FieldConflict[];
  /** Why the operation would be refused as a no-op (409), if it would. */
  refusal: ConflictError | undefined;
}

const EMPTY_DOCUMENT: AgentDocument = emptyDocument();

export interface PlanOptions {
  kind: 'merge' | 'rebase';
  /** Who wins conflicts without a resolution. */
  winner: Side | 'later';
  resolutions?: ResolutionInput;
  /** Where `resolutions` came from (default the body). */
  resolutionsIn?: ResolutionsLocation;
}

/**
 * A merge that changes nothing because every conflict went the target's way (by default the later
 * commit wins) says how to keep the source's side instead: that is what its author usually wants.
 */
function noChangeMessage(source: BranchRow, target: BranchRow, conflicts: FieldConflict[]): string {
  const refusal = `Merging "${source.name}" would not change "${target.name}"`;
  if (conflicts.length === 0) return `${refusal}.`;
  const paths = conflicts.slice(0, 3).map((conflict) => (conflict.path === '' ? conflict.section : `${conflict.section}.${conflict.path}`));
  const more = conflicts.length > 3 ? ` and ${conflicts.length - 3} more` : '';
  return (
    `${refusal}: its changes to ${paths.join(', ')}${more} conflict with "${target.name}" and are decided for "${target.name}" ` +
    `(by default the later commit wins). To keep "${source.name}"'s side, merge with force=true, or with ` +
    `resolutions {"<path>": "source"} for chosen paths; the merge preview lists the conflicts.`
  );
}

/**
 * What merging `source` into `target` (or rebasing `source` onto `target` = main) would produce:
 * the same computation serves the preview and the operation, so a preview never lies.
 */
export async function planMerge(
  trx: Kysely<Database>,
  context: AppContext,
  agentId: string,
  source: BranchRow,
  target: BranchRow,
  options: PlanOptions,
): Promise<MergePlan> {
  const store = versionsStore(trx);
  const [sourceHead, targetHead] = await store.findMany(agentId, [source.head_version_id, target.head_version_id]).then((rows) => [
    rows.find((row) => row.id === source.head_version_id) as VersionRow,
    rows.find((row) => row.id === target.head_version_id) as VersionRow,
  ]);
  const comparison = await compareVersions(context, trx, sourceHead, targetHead);
  const base = comparison.mergeBaseId ? (await store.findMany(agentId, [comparison.mergeBaseId]))[0] : undefined;
  const [baseDocument, sourceDocument, targetDocument] = await Promise.all([
    base ? loadDocument(context, trx, base) : EMPTY_DOCUMENT,
    loadDocument(context, trx, sourceHead),
    loadDocument(context, trx, targetHead),
  ]);
  const winner = options.winner === 'later' ? defaultWinner(sourceHead, targetHead) : options.winner;

  const { document: filled, conflicts, prepared, sameAsTarget } = await mergeAndPrepare(
    context.documents,
    [baseDocument, sourceDocument, targetDocument],
    winner,
    options.resolutions,
    options.resolutionsIn ?? 'body',
  );
  // A procedure resolved by hand must name a version of that procedure.
  const stray = await strayProcedureVersions(trx, agentId, proceduresOf(filled));
  if (stray.length > 0) {
    throw RequestValidationError.at(
      [options.resolutionsIn ?? 'body', 'resolutions', `procedures.${stray[0]}`],
      `The value for procedure ${stray[0]} must be one of its version ids (or null to leave it out).`,
    );
  }
  const resultingDocument = options.kind === 'merge' ? targetHead.document_hash : sourceHead.document_hash;

  let refusal: ConflictError | undefined;
  if (options.kind === 'merge') {
    if (comparison.ahead === 0) {
      refusal = (await store.isMergedSomewhere(sourceHead.id))
        ? new ConflictError('branch_already_merged', `Branch "${source.name}" has no commits since it was merged; there is nothing to merge.`)
        : new ConflictError('no_new_changes_to_merge', `Branch "${source.name}" has no commits that "${target.name}" does not already have.`);
    } else if (prepared.rootHash === resultingDocument || sameAsTarget) {
      // Nothing a read would show changes (defaults one side stored and the other did not are no change).
      refusal = new ConflictError('no_new_changes_to_merge', noChangeMessage(source, target, conflicts));
    }
  } else if (comparison.behind === 0) {
    refusal = new ConflictError('branch_already_up_to_date', `Branch "${source.name}" already contains main's head.`);
  }

  return { sourceHead, targetHead, base, aheadRanges: comparison.aheadRanges, document: filled, prepared, conflicts, refusal };
}

/** What rebasing `branch` onto main would produce (the branch's value wins conflicts): the preview, the rebase and the automatic rebase. */
export async function planRebase(trx: Kysely<Database>, context: AppContext, agent: Pick<AgentRow, 'id' | 'main_branch_id'>, branch: BranchRow): Promise<MergePlan> {
  const main = await branchesStore(trx).findOrThrow(agent.id, agent.main_branch_id);
  return planMerge(trx, context, agent.id, branch, main, { kind: 'rebase', winner: 'source' });
}

/**
 * `mergeAndFill`, encoded, and whether the result reads the same as the target. Large documents
 * are merged in a compute worker, off the event loop (src/compute).
 */
async function mergeAndPrepare(
  documents: DocumentStore,
  [base, source, target]: [AgentDocument, AgentDocument, AgentDocument],
  winner: Side,
  resolutions: ResolutionInput | undefined,
  resolutionsIn: ResolutionsLocation,
): Promise<{ document: AgentDocument; conflicts: FieldConflict[]; prepared: PreparedDocument; sameAsTarget: boolean }> {
  try {
    if (isLarge(base, source, target)) {
      const merged = await offload('mergeDocuments', base, source, target, winner, resolutions, resolutionsIn);
      return { ...merged, prepared: documents.adopt(merged.document, merged.tree) };
    }
    const merged = mergeAndFill(base, source, target, winner, resolutions, resolutionsIn);
    return { ...merged, prepared: await documents.prepare(merged.document), sameAsTarget: sameVisibleDocument(target, merged.document) };
  } catch (error) {
    // Two sides within the limit can merge into a config over it: the merge is refused, not the request.
    if (error instanceof RequestValidationError && error.issues[0]?.type === 'document_too_large') {
      throw new ConflictError('merge_result_invalid', `The merged config would be too large: ${error.issues[0].msg}.`);
    }
    throw error;
  }
}
