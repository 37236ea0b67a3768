import { isLarge, offload, withinBudgetOr } from '../../compute/offload.js';
import type { DocumentStore, PreparedDocument } from '../versions/documents.store.js';
import { type AgentDocument, sameVisibleDocument } from './agent-document.js';
import { applyConfigChanges, type ChangedConfig, type ConfigChanges, newConfig } from './config-changes.js';

/** A config change, encoded, and whether it reads the same as the config it was made from. */
export interface PreparedChange extends ChangedConfig {
  prepared: PreparedDocument;
  /** The new document reads the same as the current one (always false for a new agent). */
  same: boolean;
}

/**
 * `applyConfigChanges` (or `newConfig` when `current` is null), encoded for storage. A large body
 * or document is changed, compared and encoded in a compute worker, off the event loop
 * (src/compute); the result is the same.
 */
export async function prepareChange(documents: DocumentStore, current: ChangedConfig | null, sent: ConfigChanges): Promise<PreparedChange> {
  if (isLarge(sent)) {
    const { config, same, tree } = await offload('changeConfig', current, sent);
    return { ...config, same, prepared: documents.adopt(config.document, tree) };
  }
  const config = current ? applyConfigChanges(current, sent) : newConfig(sent);
  const prepared = await documents.prepare(config.document);
  return { ...config, prepared, same: current !== null && (await sameVisible(current.document, config.document)) };
}

/** `sameVisibleDocument`, in a compute worker when the documents are large. */
export async function sameVisible(a: AgentDocument, b: AgentDocument): Promise<boolean> {
  if (a === b) return true;
  return withinBudgetOr(() => sameVisibleDocument(a, b), 'sameVisible', a, b);
}
