// FFT-friendly sizes live in @tme/fft-size (one copy for every package); the facade re-exports them.
export { isFastSize, nextFastShape, nextFastSize, type Zyx } from '@tme/fft-size';
