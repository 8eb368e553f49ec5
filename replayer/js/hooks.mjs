// Module customization hooks (registered by load.mjs with module.register): report the URL of
// every ES module (and CommonJS file imported from one) that is loaded, so that the reducer's
// identity covers its local modules and the packages it imports.

let port = null;

export async function initialize(data) {
  port = data?.port ?? null;
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (port !== null && url.startsWith('file:')) port.postMessage(url);
  return result;
}
