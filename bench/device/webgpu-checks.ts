/**
 * Every WebGPU correctness test in one file, for the lent GPU machine (bench/device/prepare.sh
 * bundles this into .carry/webgpu-checks.cjs, so tfjs travels once; run.sh's "checks" phase runs
 * it with `node --test`). Each import registers its tests with node:test; test/device-bundle.test.ts
 * checks that every test file using a WebGPU adapter is here.
 */
import '../../test/kernels-webgpu.test';
import '../../test/batchnorm-webgpu.test';
import '../../test/layernorm-webgpu.test';
import '../../test/optimizer-webgpu.test';
import '../../test/webgpu-upload.test';
import '../../test/webgpu-pool.test';
import '../../test/webgpu-tune.test';
import '../../test/winograd-webgpu.test';
import '../../test/methods-views.test';
import '../../test/webgpu-copy.test';
import '../../test/webgpu-matmul.test';
import '../../test/augment-webgpu.test';
