import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { driverManifests } from '../src/devices';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-icd-'));
  for (const name of ['b_icd.json', 'a_icd.json', 'notes.txt']) fs.writeFileSync(path.join(dir, name), '{}');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('driverManifests: the Vulkan loader’s manifest search on Linux', () => {
  it('VK_DRIVER_FILES alone when set: files as given, folders as their .json files in name order', () => {
    const one = path.join(dir, 'b_icd.json');
    expect(driverManifests({ VK_DRIVER_FILES: `${one}:${dir}`, VK_ICD_FILENAMES: '/x.json', HOME: '/h' }))
      .toEqual([one, path.join(dir, 'a_icd.json'), path.join(dir, 'b_icd.json')]);
  });

  it('the older VK_ICD_FILENAMES when VK_DRIVER_FILES is unset; missing entries are dropped', () => {
    expect(driverManifests({ VK_ICD_FILENAMES: `/nonexistent/x.json:${dir}`, HOME: '/h' }))
      .toEqual([path.join(dir, 'a_icd.json'), path.join(dir, 'b_icd.json')]);
  });

  it('otherwise VK_ADD_DRIVER_FILES, then the XDG config folders, /usr/local/etc, /etc, then the XDG data folders', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-xdg-'));
    try {
      const folder = (d: string): string => {
        const f = path.join(root, d, 'vulkan', 'icd.d');
        fs.mkdirSync(f, { recursive: true });
        fs.writeFileSync(path.join(f, `${d}.json`), '{}');
        return path.join(f, `${d}.json`);
      };
      const [config, data, share] = [folder('config'), folder('data'), folder('share')];
      const found = driverManifests({
        HOME: path.join(root, 'nohome'), VK_ADD_DRIVER_FILES: path.join(dir, 'a_icd.json'),
        XDG_CONFIG_HOME: path.join(root, 'config'), XDG_DATA_HOME: path.join(root, 'data'), XDG_DATA_DIRS: path.join(root, 'share'),
      });
      const ours = found.filter((f) => f.startsWith(root) || f.startsWith(dir));
      expect(ours).toEqual([path.join(dir, 'a_icd.json'), config, data, share]);
      // The system folders sit between the config and data homes, in the loader's order.
      const etc = found.findIndex((f) => f.startsWith('/etc/vulkan/icd.d/'));
      if (etc >= 0) expect(etc).toBeGreaterThan(found.indexOf(config));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
