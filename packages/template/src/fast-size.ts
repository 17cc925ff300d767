// FFT-friendly sizes live in @tme/fft-size (one copy for every package).
export { isFastSize, nextFastEvenSize } from '@tme/fft-size';
