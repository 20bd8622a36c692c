// Driver conformance against Azure Blob (Azurite).
import { defineConformanceSuite } from './conformance.ts';

defineConformanceSuite('azure');
