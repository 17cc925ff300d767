// Tests use lavapipe (Mesa's CPU Vulkan driver) unless the caller chose an ICD: the only Vulkan device on CI.
process.env.VK_ICD_FILENAMES ??= '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
// Keep FFTW wisdom out of the user's cache during tests.
process.env.TME_FFTW_WISDOM ??= 'off';
