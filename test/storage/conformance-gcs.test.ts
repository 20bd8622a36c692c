// Driver conformance against GCS (gcp-storage-emulator).
import { defineConformanceSuite } from './conformance.ts';

defineConformanceSuite('gcs');
