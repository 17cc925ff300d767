"""Independent reference for tme's simulateDensity: gemmi's electron-scattering density of a PDB model.

Usage: gemmi_density.py MODEL.pdb VOXEL_A BOX_N ORIGIN_X ORIGIN_Y ORIGIN_Z BLUR_A2 OUT.f32
Writes BOX_N^3 float32 values (little-endian, z slowest, x fastest: tme's layout) to OUT.f32 and prints JSON
metadata. Grid point (i, j, k) of gemmi's P1 cell sits at (i, j, k)·VOXEL Å; the atoms are shifted by −ORIGIN
so that this point is the model's ORIGIN + (i, j, k)·VOXEL Å, i.e. the same place as tme's voxel (i, j, k).

gemmi 0.5.7's DensityCalculatorE uses the C4322 table: International Tables Vol. C, Table 4.3.2.2, which is
the Peng et al. (1996) 5-Gaussian fit for neutral atoms. It evaluates the density at grid points (no voxel
averaging), uses each atom's occupancy and B_iso, adds `blur` (Å²) to every atom, and wraps periodically.
"""
import json
import sys

import gemmi
import numpy as np

path, voxel, n, ox, oy, oz, blur, out = sys.argv[1:9]
voxel, n, blur = float(voxel), int(n), float(blur)
st = gemmi.read_structure(path)
st.remove_waters()  # tme side drops residue HOH too
st.remove_hydrogens()  # none in 1TII; keeps both sides on the same atoms if a model has them
st.setup_entities()
shift = gemmi.Position(-float(ox), -float(oy), -float(oz))
for model in st:
    for chain in model:
        for residue in chain:
            for atom in residue:
                atom.pos = atom.pos + shift
edge = n * voxel
st.cell = gemmi.UnitCell(edge, edge, edge, 90, 90, 90)
st.spacegroup_hm = 'P 1'

dc = gemmi.DensityCalculatorE()
dc.d_min = 2 * voxel  # grid spacing = d_min / (2·rate) = voxel
dc.rate = 1.0
dc.blur = blur  # gemmi 0.5.7 defaults to blur 0; set explicitly (the low-pass B tme adds to every atom)
dc.set_grid_cell_and_spacegroup(st)
dc.put_model_density_on_grid(st[0])
g = dc.grid
if (g.nu, g.nv, g.nw) != (n, n, n):
    sys.exit(f'gemmi chose a {g.nu}x{g.nv}x{g.nw} grid, expected {n}^3')
arr = np.array(g, copy=False)  # indexed [x, y, z]
arr.T.astype('<f4').tofile(out)  # .T: [z, y, x], C order = x fastest
print(json.dumps({'gemmi': gemmi.__version__, 'atoms': st[0].count_atom_sites(), 'grid': [g.nu, g.nv, g.nw],
                  'spacing': g.spacing, 'blur': dc.blur, 'cutoff': dc.cutoff}))
