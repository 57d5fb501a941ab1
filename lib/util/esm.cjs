// Loads an ESM-only package from CommonJS code (tslab compiles notebooks to CommonJS,
// and TypeScript's CommonJS output rewrites `import()` into `require()`).
module.exports = function importEsm(specifier) {
  return import(specifier);
};
