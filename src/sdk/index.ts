export { RksNode, isServerName } from './node';
export type { NodeSecret, RksNodeEvents, RksNodeOptions } from './node';
