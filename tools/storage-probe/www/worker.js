import init, { open, put } from './pkg/storage_probe.js';
let ready = init();
onmessage = async (e) => {
  await ready;
  const m = e.data;
  try {
    if (m.op === 'open') { postMessage({ id: m.id, ok: await open(m.sync, m.journal) }); }
    else if (m.op === 'noop') { postMessage({ id: m.id, ok: true }); }
    else if (m.op === 'put') { put(m.i); postMessage({ id: m.id, ok: true }); }
    else if (m.op === 'loop') { const t = performance.now(); for (let i = 0; i < m.n; i++) put(m.base + i); postMessage({ id: m.id, ok: performance.now() - t }); }
  } catch (err) { postMessage({ id: m.id, err: String(err) }); }
};
