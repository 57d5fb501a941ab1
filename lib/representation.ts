/**
 * Looking inside a trained representation and taking it elsewhere (issue 14): encoder weights out
 * to and in from PyTorch as .safetensors.
 */
export * from './io/safetensors';
export * from './io/torchLayout';
export * from './io/weights';
