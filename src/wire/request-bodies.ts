import * as z from 'zod';

import {
  zBodyCreateAgentDraftV1ConvaiAgentsAgentIdDraftsPost,
  zBodyCreateAgentV1ConvaiAgentsCreatePost,
  zBodyCreateANewBranchV1ConvaiAgentsAgentIdBranchesPost,
  zBodyPatchesAnAgentSettingsV1ConvaiAgentsAgentIdPatch,
} from './generated/zod.gen.js';

/** Our limits (upstream documents none): they keep names and tags indexable on both databases. */
export const MAX_AGENT_NAME = 512;
export const MAX_TAG = 256;
export const MAX_TAGS = 100;
const agentName = z.string().max(MAX_AGENT_NAME).nullish();
const agentTags = z.array(z.string().max(MAX_TAG)).max(MAX_TAGS).nullish();

/**
 * The request bodies that carry a whole config, by name: a large one is validated in a compute
 * worker (src/compute), which finds its schema here.
 */
export const CONFIG_BODIES = {
  createAgent: zBodyCreateAgentV1ConvaiAgentsCreatePost.extend({ name: agentName, tags: agentTags }),
  updateAgent: zBodyPatchesAnAgentSettingsV1ConvaiAgentsAgentIdPatch.extend({ name: agentName, tags: agentTags }),
  createBranch: zBodyCreateANewBranchV1ConvaiAgentsAgentIdBranchesPost,
  saveDraft: zBodyCreateAgentDraftV1ConvaiAgentsAgentIdDraftsPost.extend({
    name: z.string().max(MAX_AGENT_NAME),
    tags: z.array(z.string().max(MAX_TAG)).max(MAX_TAGS).nullish(),
  }),
};

export type ConfigBodyName = keyof typeof CONFIG_BODIES;

/** The name under which a route's body schema is kept here, if it is one of them. */
export function configBodyName(schema: unknown): ConfigBodyName | undefined {
  return (Object.keys(CONFIG_BODIES) as ConfigBodyName[]).find((name) => CONFIG_BODIES[name] === schema);
}
