// Driver conformance against S3 (s3rver).
import { defineConformanceSuite } from './conformance.ts';

defineConformanceSuite('s3');
