/**
 * A strict IMOD model reader for tests, following IMOD's imodel_read() loop (libimod/imodel_files.c) as described in
 * relion-imod.md §6: big-endian, IMODV1.2, 232-byte header, OBJT/CONT chunks, generic <id><size> chunks skipped,
 * IEOF last. Stricter than IMOD: counts must match chunks and nothing may follow IEOF.
 */
export interface ReadImodObject {
  name: string;
  contsize: number;
  flags: number;
  rgb: [number, number, number];
  pdrawsize: number;
  contours: Float32Array[];
}

export interface ReadImodModel {
  name: string;
  max: [number, number, number];
  objsize: number;
  flags: number;
  pixsize: number;
  units: number;
  objects: ReadImodObject[];
}

function text(bytes: Uint8Array, start: number, length: number): string {
  const slice = bytes.subarray(start, start + length);
  const end = slice.indexOf(0);
  return Buffer.from(end < 0 ? slice : slice.subarray(0, end)).toString('latin1');
}

export function readImodStrict(bytes: Uint8Array): ReadImodModel {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = (at: number): string => text(bytes, at, 4);
  if (id(0) !== 'IMOD') throw new Error(`not an IMOD file: ${id(0)}`);
  if (id(4) !== 'V1.2') throw new Error(`unexpected version ${id(4)}`);
  const h = 8;
  const model: ReadImodModel = {
    name: text(bytes, h, 128),
    max: [view.getInt32(h + 128), view.getInt32(h + 132), view.getInt32(h + 136)],
    objsize: view.getInt32(h + 140),
    flags: view.getUint32(h + 144),
    pixsize: view.getFloat32(h + 208),
    units: view.getInt32(h + 212),
    objects: [],
  };
  let pos = 8 + 232;
  for (;;) {
    if (pos + 4 > bytes.length) throw new Error('no IEOF marker');
    const cid = id(pos);
    pos += 4;
    if (cid === 'IEOF') break;
    if (cid === 'OBJT') {
      model.objects.push({
        name: text(bytes, pos, 64),
        contsize: view.getInt32(pos + 128),
        flags: view.getUint32(pos + 132),
        rgb: [view.getFloat32(pos + 144), view.getFloat32(pos + 148), view.getFloat32(pos + 152)],
        pdrawsize: view.getInt32(pos + 156),
        contours: [],
      });
      pos += 176;
    } else if (cid === 'CONT') {
      const obj = model.objects[model.objects.length - 1];
      if (!obj) throw new Error('CONT before OBJT');
      const psize = view.getInt32(pos);
      pos += 16;
      if (pos + 12 * psize > bytes.length) throw new Error('contour runs past the end');
      const pts = new Float32Array(3 * psize);
      for (let i = 0; i < 3 * psize; i += 1) pts[i] = view.getFloat32(pos + 4 * i);
      pos += 12 * psize;
      obj.contours.push(pts);
    } else {
      const size = view.getInt32(pos);
      pos += 4 + size;
    }
  }
  if (pos !== bytes.length) throw new Error(`${bytes.length - pos} trailing bytes after IEOF`);
  if (model.objects.length !== model.objsize) throw new Error(`objsize ${model.objsize} but ${model.objects.length} OBJT chunks`);
  for (const o of model.objects) {
    if (o.contours.length !== o.contsize) throw new Error(`object ${o.name}: contsize ${o.contsize} but ${o.contours.length} CONT chunks`);
  }
  return model;
}
