// CodeMirror 6 with YAML highlighting and live validation by the same pure validator the engine uses:
// each error is underlined, marked in the gutter, and its line tinted.
import { useEffect, useRef } from 'react';
import { basicSetup } from 'codemirror';
import { EditorView, Decoration, ViewPlugin } from '@codemirror/view';
import type { DecorationSet, ViewUpdate } from '@codemirror/view';
import { EditorState, RangeSetBuilder } from '@codemirror/state';
import { yaml } from '@codemirror/lang-yaml';
import { linter, lintGutter } from '@codemirror/lint';
import type { Diagnostic as CmDiagnostic } from '@codemirror/lint';
import { validateConfigText } from '../../shared/config/validate.ts';
import type { Diagnostic } from '../../shared/config/validate.ts';

/** Length of the YAML token at the start of `rest`: a quoted string, a flow collection's key/value, or a plain scalar. */
export function tokenLength(rest: string): number {
  const quote = rest[0];
  if (quote === '"' || quote === "'") {
    const end = rest.indexOf(quote, 1);
    return end > 0 ? end + 1 : rest.length;
  }
  if (quote === '{' || quote === '[') {
    let depth = 0;
    for (let i = 0; i < rest.length; i += 1) {
      if (rest[i] === '{' || rest[i] === '[') depth += 1;
      else if ((rest[i] === '}' || rest[i] === ']') && --depth === 0) return i + 1;
    }
    return rest.length;
  }
  const match = /^[^,}\]#]*/.exec(rest);
  const length = (match?.[0] ?? '').trimEnd().length;
  return Math.max(1, Math.min(length || rest.length, rest.length));
}

export function toEditorDiagnostics(state: EditorState, diagnostics: Diagnostic[]): CmDiagnostic[] {
  const doc = state.doc;
  return diagnostics.map((d) => {
    const line = doc.line(Math.min(Math.max(1, d.line), doc.lines));
    const from = Math.min(line.from + Math.max(0, d.column - 1), line.to);
    const to = from < line.to ? from + tokenLength(line.text.slice(from - line.from)) : Math.min(from + 1, doc.length);
    return {
      from,
      to: Math.max(from, to),
      severity: d.severity,
      source: d.key || 'config',
      message: `${d.message}${d.expected ? ` (expected ${d.expected})` : ''} Fix: ${d.fix}`,
    };
  });
}

function lineMarks(fileName: string) {
  const build = (view: EditorView): DecorationSet => {
    const builder = new RangeSetBuilder<Decoration>();
    const { diagnostics } = validateConfigText(view.state.doc.toString(), fileName);
    const lines = [...new Set(diagnostics.map((d) => `${d.severity}:${Math.min(Math.max(1, d.line), view.state.doc.lines)}`))]
      .map((k) => ({ severity: k.split(':')[0] ?? 'error', line: Number(k.split(':')[1]) }))
      .sort((a, b) => a.line - b.line);
    let lastLine = 0;
    for (const { severity, line } of lines) {
      if (line === lastLine) continue;
      lastLine = line;
      const at = view.state.doc.line(line).from;
      builder.add(at, at, Decoration.line({ class: `cm-problemLine cm-problemLine-${severity}`, attributes: { 'data-problem-line': String(line) } }));
    }
    return builder.finish();
  };
  return ViewPlugin.fromClass(
    class {
      decorations: DecorationSet;
      constructor(view: EditorView) {
        this.decorations = build(view);
      }
      update(u: ViewUpdate) {
        if (u.docChanged) this.decorations = build(u.view);
      }
    },
    { decorations: (v) => v.decorations },
  );
}

export interface YamlEditorProps {
  value: string;
  fileName: string;
  onChange: (text: string) => void;
  /** Puts the cursor at this line and column, scrolled into view, whenever `key` changes (a problem clicked). */
  jump?: { line: number; column: number; key: number } | null;
}

export function YamlEditor({ value, fileName, onChange, jump }: YamlEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const editor = new EditorView({
      parent: host.current,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          yaml(),
          EditorView.lineWrapping,
          lintGutter(),
          linter((v) => toEditorDiagnostics(v.state, validateConfigText(v.state.doc.toString(), fileName).diagnostics), { delay: 150 }),
          lineMarks(fileName),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) onChangeRef.current(u.state.doc.toString());
          }),
          EditorView.contentAttributes.of({ 'aria-label': `YAML editor for ${fileName}` }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // The editor is created once per file; later value changes are pushed in by the effect below.
  }, [fileName]);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  const jumpKey = jump?.key;
  useEffect(() => {
    const editor = view.current;
    if (!editor || !jump) return;
    const doc = editor.state.doc;
    const line = doc.line(Math.min(Math.max(1, jump.line), doc.lines));
    const at = Math.min(line.from + Math.max(0, jump.column - 1), line.to);
    editor.dispatch({ selection: { anchor: at }, effects: EditorView.scrollIntoView(at, { y: 'center' }) });
    editor.focus();
    // Only a new jump moves the cursor; typing must not.
  }, [jumpKey]);

  return <div className="editor" ref={host} data-testid="yaml-editor" />;
}
