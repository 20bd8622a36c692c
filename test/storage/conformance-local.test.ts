// Driver conformance against a local folder.
import { defineConformanceSuite } from './conformance.ts';

defineConformanceSuite('local');
