/**
 * Every type a public signature names is exported from index.ts, so a user can name it too (to type
 * a variable, a helper's parameter, an options object built elsewhere). Walks the declarations of
 * everything index.ts exports, collects the named types they reference that are declared in Eddy's
 * own sources, and expects each of them to be exported.
 */
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const entry = `${root}index.ts`;

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(`${root}tsconfig.json`, (path) => ts.sys.readFile(path));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root).options;
}

/** Names of Eddy's own types that public declarations reference but index.ts does not export, with where. */
function unexportedTypes(): string[] {
  const program = ts.createProgram([entry], compilerOptions());
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exported = checker.getExportsOfModule(module);
  const exportedTargets = new Set(exported.map((s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s)));
  const own = (d: ts.Declaration): boolean => {
    const file = d.getSourceFile().fileName;
    return file.startsWith(root) && !file.includes('/node_modules/');
  };
  const missing = new Map<string, string>();
  const visited = new Set<ts.Symbol>();
  const visit = (symbol: ts.Symbol, from: string): void => {
    if (visited.has(symbol)) return;
    visited.add(symbol);
    for (const declaration of symbol.declarations ?? []) {
      if (!own(declaration)) continue;
      const walk = (node: ts.Node): void => {
        // Function bodies, initializers and private members are implementation, not signature.
        if (ts.isBlock(node) || (ts.isVariableDeclaration(node) && node.type === undefined)) return;
        if (ts.isClassElement(node) && (ts.getCombinedModifierFlags(node) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0) return;
        if (ts.isClassElement(node) && node.name !== undefined && ts.isPrivateIdentifier(node.name)) return;
        if (ts.isParameter(node) && (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Private) !== 0) return;
        if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node)) {
          const name = ts.isTypeReferenceNode(node) ? node.typeName : node.expression;
          let referenced = checker.getSymbolAtLocation(name);
          if (referenced !== undefined && referenced.flags & ts.SymbolFlags.Alias) referenced = checker.getAliasedSymbol(referenced);
          const declared = referenced?.declarations?.[0];
          if (referenced !== undefined && declared !== undefined && own(declared) && !(referenced.flags & ts.SymbolFlags.TypeParameter)) {
            if (!exportedTargets.has(referenced) && !missing.has(referenced.name)) missing.set(referenced.name, from);
            visit(referenced, `${from} > ${referenced.name}`);
          }
        }
        ts.forEachChild(node, walk);
      };
      walk(declaration);
    }
  };
  for (const symbol of exported) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    visit(target, symbol.name);
  }
  return [...missing].map(([name, from]) => `${name} (via ${from})`).sort();
}

void t.test('every type named in a public signature is exported from index.ts', async (t) => {
  t.same(unexportedTypes(), []);
});
