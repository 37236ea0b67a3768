// Response schemas of our routes, for the OpenAPI document: upstream's own, generated.
export {
  zAgentBranchResponse,
  zAgentVersionMetadata,
  zCreateAgentBranchResponseModel,
  zCreateAgentResponseModel,
  zGetAgentResponseModel,
  zGetAgentsPageResponseModel,
  zListResponseAgentBranchSummary,
} from './generated/zod.gen.js';
export { zMergePreviewResponseModel } from './generated/zod.gen.js';
