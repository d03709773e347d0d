/**
 * Module resolution hooks of ./prefer-build.mjs (they run on the loader thread): a relative
 * import that lands on `src/<path>.js` or `.ts` resolves to `dist/<path>.js`. Registered only
 * when the build is fresh; anything else goes on to tsx and Node.
 */
let src;
let dist;

export function initialize(data) {
  src = data.src;
  dist = data.dist;
}

export async function resolve(specifier, context, nextResolve) {
  if (context.parentURL && (specifier.startsWith('./') || specifier.startsWith('../'))) {
    const url = new URL(specifier, context.parentURL).href;
    if (url.startsWith(src) && /\.[jt]s$/.test(url)) {
      return { url: `${dist}${url.slice(src.length, -3)}.js`, format: 'module', shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}
