// Kernel evidence for any mapping: the PFN lifecycle from tracefs, page state
// from pagemap and kpageflags, page-poison reports, and free-page accounting.
export { PfnTrace, MAPPING_PROBES, parseTrace, markerTime, type PfnTraceLog, type PfnTraceOptions, type TraceEvent, type MappingApi } from './pfn-trace.js';
export { analyzeLifecycle, describeLifecycle, pagesFromPagemap, pagesFromTrace, type Lifecycle, type MappingWindow, type UserPage, type FreedWhileMapped } from './lifecycle.js';
export { readPagemap, pageStates, KPF, type PagemapEntry, type KpageState, type KpageFlag } from './pagemap.js';
export { findPoisonReports, decodeAddressTag, pagePoisoningEnabled, sweepFreedPages, PAGE_POISON_BYTE, type PoisonReport, type TagRun } from './page-poison.js';
export { freePages, measureFreePages, judgeLeak, type LeakMeasure, type LeakVerdict } from './free-pages.js';
export { findTracefs, tracefsRoot, TraceInstance, KprobeGroup, type KprobeSpec } from './tracefs.js';
export { traceMapping, type TracedMapping } from './trace-mapping.js';
