/**
 * Looking inside a trained representation and taking it elsewhere (issue 14): nearest neighbours,
 * the embeddings of finished runs (shown by viz.embeddingExplorer and viz.neighbourGrid), and
 * encoder weights out to and in from PyTorch as .safetensors (and the check that a file reproduces its encoder).
 */
export * from '../eval/neighbours';
export * from './runEmbeddings';
export * from '../io/safetensors';
export * from '../io/torchLayout';
export * from '../io/weights';
export * from '../io/exportCheck';
