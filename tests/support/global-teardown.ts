export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __rksVault?: { stop(): Promise<void> } }).__rksVault?.stop();
}
