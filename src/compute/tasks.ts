import type { JsonObject } from '../domain/canonical-json.js';
import { encodeTree } from '../domain/content-tree.js';
import type { Side } from '../domain/three-way-merge.js';
import { CONFIG_SECTION_NAMES, type ConfigSectionName } from '../domain/sections.js';
import { type AgentDocument, renderedSection, sameVisibleDocument } from '../features/agents/agent-document.js';
import { applyConfigChanges, type ChangedConfig, type ConfigChanges, newConfig } from '../features/agents/config-changes.js';
import { type MergedDocuments, mergeAndFill, type ResolutionInput, type ResolutionsLocation } from '../features/merges/merge-documents.js';
import { diffDocuments } from '../features/versions/document-diff.js';
import { ApiError, ConflictError, RequestValidationError, type ValidationIssue } from '../errors.js';
import { validatePart } from '../http/validate-part.js';
import { type AgentConfigSections, validateAgentConfig } from '../wire/agent-config.js';
import { CONFIG_BODIES, type ConfigBodyName } from '../wire/request-bodies.js';

/**
 * The pure work of a write over a large document, as it runs in a worker thread (offload.ts): no
 * database, no caches that outlive a task. Each task returns everything the write needs from that
 * document, so that a large document crosses the thread boundary once each way.
 */

/** A document's encoding as nodes (content-tree.ts), without the memo a worker does not keep. */
export interface TreeEncoding {
  rootHash: string;
  nodes: Map<string, string>;
  size: number;
  values: number;
}

export function encodeDocument(document: JsonObject): TreeEncoding {
  const { rootHash, nodes, size, values } = encodeTree(document);
  return { rootHash, nodes, size, values };
}

export interface ChangedConfigResult {
  config: ChangedConfig;
  /** Whether the new document reads the same as the current one (a no-op commit). */
  same: boolean;
  tree: TreeEncoding;
}

export const TASKS = {
  /** A commit or branch body applied to a document (`current`), or a create body (`current` null). */
  changeConfig(current: ChangedConfig | null, sent: ConfigChanges): ChangedConfigResult {
    const config = current ? applyConfigChanges(current, sent) : newConfig(sent);
    const same = current ? sameVisibleDocument(current.document, config.document) : false;
    return { config, same, tree: encodeDocument(config.document) };
  },

  /** A draft's sections validated and filled. */
  validateSections(sections: AgentConfigSections, locPrefix: (string | number)[]): AgentConfigSections {
    return validateAgentConfig(sections, locPrefix);
  },

  encodeDocument,

  sameVisible: sameVisibleDocument,

  diffDocuments,

  /** A config request body checked against its route schema (app.ts, the validator). */
  validateConfigBody(name: ConfigBodyName, body: unknown): unknown {
    const result = validatePart(CONFIG_BODIES[name], 'body', body);
    if ('error' in result) throw result.error;
    return result.value;
  },

  mergeDocuments(
    base: AgentDocument,
    source: AgentDocument,
    target: AgentDocument,
    winner: Side,
    resolutions: ResolutionInput | undefined,
    resolutionsIn: ResolutionsLocation,
  ): MergedDocuments & { sameAsTarget: boolean; tree: TreeEncoding } {
    const merged = mergeAndFill(base, source, target, winner, resolutions, resolutionsIn);
    return { ...merged, sameAsTarget: sameVisibleDocument(target, merged.document), tree: encodeDocument(merged.document) };
  },

  /** A large response part as UTF-8 JSON: its text and bytes are made here, not on the event loop. */
  jsonBytes(value: unknown): Uint8Array {
    return Buffer.from(JSON.stringify(value));
  },

  /** The config sections of a read as JSON text (agent-response.ts caches them by document). */
  renderSections(document: AgentDocument, agentSettings: JsonObject): Record<ConfigSectionName, string> {
    return Object.fromEntries(
      CONFIG_SECTION_NAMES.map((section) => [section, JSON.stringify(renderedSection(section, document, () => agentSettings))]),
    ) as Record<ConfigSectionName, string>;
  },
};

export type Tasks = typeof TASKS;
export type TaskName = keyof Tasks;

/** An error as it crosses the thread boundary (a thrown class arrives as a plain Error). */
export type TaskError =
  | { kind: 'validation'; issues: ValidationIssue[] }
  | { kind: 'api'; statusCode: number; type: string; code: string; message: string }
  | { kind: 'error'; message: string; stack?: string };

export type TaskOutcome = { ok: true; value: unknown } | { ok: false; error: TaskError };

export function runTask(name: TaskName, args: unknown[]): TaskOutcome {
  try {
    return { ok: true, value: (TASKS[name] as (...taskArgs: unknown[]) => unknown)(...args) };
  } catch (error) {
    if (error instanceof RequestValidationError) return { ok: false, error: { kind: 'validation', issues: error.issues } };
    if (error instanceof ApiError) {
      return { ok: false, error: { kind: 'api', statusCode: error.statusCode, type: error.type, code: error.code, message: error.message } };
    }
    const cause = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: { kind: 'error', message: cause.message, stack: cause.stack } };
  }
}

/** The error a task threw, as the class the rest of the server expects. */
export function taskError(error: TaskError): Error {
  switch (error.kind) {
    case 'validation':
      return new RequestValidationError(error.issues);
    case 'api':
      return error.statusCode === 409 ? new ConflictError(error.code, error.message) : new ApiError(error.statusCode, error.type, error.code, error.message);
    default:
      return Object.assign(new Error(`in a compute worker: ${error.message}`), { stack: error.stack });
  }
}
