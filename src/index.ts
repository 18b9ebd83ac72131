/** The rks package: the node SDK, for edge servers (it loads nothing of the server). */
export { RksNode } from './sdk';
export type { NodeSecret, RksNodeEvents, RksNodeOptions } from './sdk';
