import { afterAll } from 'vitest';
import { removeTempDirs } from '../helpers/temp.ts';

// Every test runs with the cloud metadata endpoints pointed at a closed loopback port, so no test
// ever probes the real metadata addresses. Tests that need a metadata service start a fake one and
// override these for their own call.
const CLOSED_LOOPBACK = 'http://127.0.0.1:9';

process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = CLOSED_LOOPBACK;
process.env.GCE_METADATA_HOST = '127.0.0.1:9';
process.env.AZURE_IMDS_ENDPOINT = CLOSED_LOOPBACK;
process.env.CLOUD_INGEST_DMI_DIR = '/nonexistent-dmi';
delete process.env.CLOUD_PROVIDER;

// Temp folders a test file made with tempDir are removed once its tests are done, whether or not it says so.
afterAll(removeTempDirs);
