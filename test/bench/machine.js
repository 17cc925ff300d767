// The machine a benchmark ran on, as every results file names it: CPU, cores, memory, OS, Node.js, the devices, and
// a slug for the file name (the CPU, its cores and the first GPU).
'use strict';
const os = require('node:os');

function machine() {
  const cpus = os.cpus();
  let devices = [];
  try {
    // eslint-disable-next-line global-require
    devices = require('@tme/native').listDevices();
  } catch { /* the native bench reports why it cannot run */ }
  const gpu = devices.find((d) => d.type === 'discrete-gpu' || d.type === 'integrated-gpu');
  const cpuModel = (cpus[0] && cpus[0].model || 'unknown-cpu').trim();
  const slug = `${cpuModel}-${cpus.length}core${gpu ? `-${gpu.name}` : ''}`
    .toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return {
    slug,
    cpu: cpuModel,
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    devices: devices.map((d) => ({ name: d.name, type: d.type, memoryBytes: d.memoryBytes, ...(d.driver ? { driver: `${d.driver.name} ${d.driver.info}` } : {}) })),
    loadAverage: os.loadavg(),
  };
}

module.exports = { machine };
