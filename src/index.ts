/** rks as a library: the app for embedding, and the node SDK for edge servers. */
export { createApp } from './app';
export type { AppOptions } from './app';
export { RksNode } from './client';
export type { NodeSecret, RksNodeEvents, RksNodeOptions } from './client';
