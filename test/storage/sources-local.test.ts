// A local folder: driver conformance and engine-level ingest scenarios, one store start-up for both.
import { defineSourceSuites } from './conformance.ts';
import { defineIngestSuite } from './ingest-suite.ts';

defineSourceSuites('local', defineIngestSuite);
