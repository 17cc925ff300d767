// Shared by tme's compute shaders. Every elementwise shader uses a grid-stride loop, so any size fits the
// 65535-workgroup dispatch limit.
#define GRID_STRIDE(i, count) for (uint i = gl_GlobalInvocationID.x; i < (count); i += gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// Floats ordered as unsigned integers, so atomicMax on uint is a float max (key 0 is below every float).
uint floatKey(float f) {
  uint u = floatBitsToUint(f);
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}
float keyFloat(uint k) {
  return uintBitsToFloat((k & 0x80000000u) != 0u ? (k & 0x7fffffffu) : ~k);
}
