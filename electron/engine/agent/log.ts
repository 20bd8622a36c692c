// Structured logs for the node agent: one JSON object per line on stderr. Never pass secrets in fields.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface AgentLogger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
}

export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line)): AgentLogger {
  return {
    log(level, msg, fields) {
      write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
    },
  };
}

export const silentLogger: AgentLogger = { log() {} };
