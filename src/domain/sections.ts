/**
 * The sections of an agent document: the one list of them. Validation, merge, diff, rendering,
 * the no-op comparison and the bad-text checks all walk this list; what a section does is code
 * keyed by its name (`SECTION_SCHEMAS` in wire/agent-config.ts for upstream's schemas,
 * `DOCUMENT_SECTIONS` in features/agents/agent-document.ts for merge, diff and reads), which the
 * type checker asks for when a section is added here. A section's `name` is what a merge conflict
 * and a diff change report as their `section`; paths in them are relative to it.
 *
 * Adding a section is an entry here, its entry in `DOCUMENT_SECTIONS`, and its own code (what a
 * commit, a read and a merge preview do with it), as `procedures` has.
 */
export interface SectionSpec {
  readonly name: string;
  /** The keys of a version's document that it holds (a section of its own is one key: its name). */
  readonly keys: readonly string[];
  /**
   * An upstream config object: validated against upstream's request schema with its defaults
   * filled, shown by its response schema, merged and diffed field path by field path.
   */
  readonly upstreamConfig: boolean;
  /** Stored as escaped JSON, so it may hold any text JSON can: the bad-text check skips it. */
  readonly anyText: boolean;
}

export const SECTIONS = [
  { name: 'conversation_config', keys: ['conversation_config'], upstreamConfig: true, anyText: true },
  { name: 'platform_settings', keys: ['platform_settings'], upstreamConfig: true, anyText: true },
  { name: 'workflow', keys: ['workflow'], upstreamConfig: true, anyText: true },
  // Extension: the name and tags as committed on a branch. They become the agent's own (its
  // columns) when committed on main or merged into it; name and tags are checked as text.
  { name: 'agent', keys: ['name', 'tags'], upstreamConfig: false, anyText: false },
  // Procedure id → procedure version id (src/features/procedures); merged id by id.
  { name: 'procedures', keys: ['procedures'], upstreamConfig: false, anyText: false },
] as const satisfies readonly SectionSpec[];

type Spec = (typeof SECTIONS)[number];

export type SectionName = Spec['name'];
/** The upstream config objects: `conversation_config`, `platform_settings`, `workflow`. */
export type ConfigSectionName = Extract<Spec, { upstreamConfig: true }>['name'];
/** Every top-level key of a version's document. */
export type DocumentKey = Spec['keys'][number];

/** The section names, as a tuple for `z.enum`. */
export const SECTION_NAMES = SECTIONS.map((section) => section.name) as [SectionName, ...SectionName[]];

export const CONFIG_SECTION_NAMES = SECTIONS.filter((section): section is Extract<Spec, { upstreamConfig: true }> => section.upstreamConfig).map(
  (section) => section.name,
);

/** The document keys whose text the bad-text check skips (a body's members of the same names). */
export const ANY_TEXT_KEYS: ReadonlySet<string> = new Set(SECTIONS.filter((section) => section.anyText).flatMap((section) => section.keys));

/** The upstream config sections of `value` (a document, a body), without its other members. */
export function configSectionsOf<T>(value: Record<ConfigSectionName, T>): Record<ConfigSectionName, T>;
export function configSectionsOf<T>(value: Partial<Record<ConfigSectionName, T>>): Partial<Record<ConfigSectionName, T>>;
export function configSectionsOf<T>(value: Partial<Record<ConfigSectionName, T>>): Partial<Record<ConfigSectionName, T>> {
  return Object.fromEntries(CONFIG_SECTION_NAMES.map((section) => [section, value[section]]));
}
