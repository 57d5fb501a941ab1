/**
 * Preloaded by scripts/test.sh for every test file: drops the one console warning tfjs' cpu backend
 * prints at its first tensor in Node ("Hi, looks like you are running TensorFlow.js in Node.js ...
 * install our node backend"). It says what the backend report already says (tfjs-node cannot install
 * here; lib/backend.ts), so in test output it only hides real warnings. Every other warning passes.
 * Plain JavaScript: wasm's worker threads inherit the --import flags without tsx's loader.
 */
const warn = console.warn.bind(console);
console.warn = (...args) => {
  if (
    args.length === 1 &&
    typeof args[0] === 'string' &&
    args[0].includes('Hi, looks like you are running TensorFlow.js in Node.js')
  )
    return;
  warn(...args);
};
