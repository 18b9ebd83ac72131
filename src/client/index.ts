export { RksNode } from './node';
export type { NodeSecret, RksNodeEvents, RksNodeOptions } from './node';
