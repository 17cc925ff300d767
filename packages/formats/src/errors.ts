// TmeError lives in @tme/errors, the bottom package every other one (native included) may use; @tme/formats keeps
// re-exporting it, so `import { TmeError } from '@tme/formats'` goes on working.
export * from '@tme/errors';
