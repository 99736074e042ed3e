import { mergeWdiffs, parseCompressOpt } from '@walbjs/diff';
const parts = [0,1,2,3,4,5,6,7].map(i => `/tmp/bb/p${i}.wdiff`);
for (let k = 0; k < 3; k++) {
const t = Date.now();
await mergeWdiffs(parts, '/tmp/bb/m8.wdiff', { cmpr: parseCompressOpt('snappy') });
console.log('merge', 256 / ((Date.now() - t) / 1000));
}
