// Kernel evidence for any mapping: the PFN lifecycle from tracefs, page state
// from pagemap and kpageflags, page-poison reports, and free-page accounting;
// and the test module's own trace events.
export { PfnTrace, withReusedTraces, MAPPING_PROBES, parseTrace, markerTime, type PfnTraceLog, type PfnTraceOptions, type TraceEvent, type MappingApi } from './pfn-trace.js';
export { analyzeLifecycle, describeLifecycle, pagesFromPagemap, pagesFromTrace, type Lifecycle, type MappingWindow, type UserPage, type FreedWhileMapped } from './lifecycle.js';
export { readPagemap, pageStates, KPF, type PagemapEntry, type KpageState, type KpageFlag } from './pagemap.js';
export { findPoisonReports, decodeAddressTag, pagePoisoningEnabled, sweepFreedPages, PAGE_POISON_BYTE, type PoisonReport, type TagRun } from './page-poison.js';
export { freePages, measureFreePages, judgeLeak, type LeakMeasure, type LeakVerdict } from './free-pages.js';
export { findTracefs, tracefsRoot, TraceInstance, KprobeGroup, type KprobeSpec } from './tracefs.js';
export { traceMapping, type TracedMapping } from './trace-mapping.js';
export { ModuleTrace, MODULE_TRACE_EVENTS, eventsOf, decodeModuleRecord, describeModuleEvents, parseFormat, parseSubbuffer, type ModuleTraceEvent, type ModuleTraceLog, type ModuleTraceOptions, type ModulePageEvent, type ModuleTraceType, type EventFormat, type FormatField, type RawRecord } from './module-trace.js';
