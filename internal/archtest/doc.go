// Package archtest holds the architecture test: a test of the import
// graph (go list -deps -test) that fails when a package imports, directly
// or through others, a package its part of the tree must not depend on.
// The sensor and the collector meet only through proto/ and the shared
// core (flow/, decode/, block/, pcapio/, internal/). The package has no
// code of its own.
package archtest
