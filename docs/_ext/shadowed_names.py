"""Griffe extension of the documentation build: a name that a package imports from the
submodule of the same name is the imported object, as at run time.

``numbaconv/__init__.py`` used to run ``from numbaconv.conv1d import conv1d`` (the module is
``numbaconv._conv1d`` now, so no name of the package is shadowed today and this extension
changes nothing; it stays as a guard).  In Python the name ``numbaconv.conv1d`` was then the
function, but griffe kept the submodule there (and said so in its debug log), so the API
reference would have left the function out.  For every such
name this extension makes the package's member an alias of the imported object.  The
package's other aliases into that submodule (``conv1d_forward``, ...) are resolved first,
since their paths go through the name that changes; the new alias takes the line of their
import, so that the reference lists the name in source order.
"""

from __future__ import annotations

import griffe


class ImportedOverSubmodule(griffe.Extension):
    """Give a package's names the objects its ``__init__`` imports under them."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: object
                   ) -> None:
        for name, member in list(pkg.members.items()):
            if member.is_alias or not member.is_module:
                continue
            if pkg.imports.get(name) != f"{member.path}.{name}" or name not in member.members:
                continue
            prefix = f"{member.path}."
            siblings = [other for other in pkg.members.values()
                        if other.is_alias and other.target_path.startswith(prefix)]
            for other in siblings:
                other.resolve_target()
            line = min((other.alias_lineno for other in siblings if other.alias_lineno),
                       default=None)
            pkg.del_member(name)
            pkg.set_member(name, griffe.Alias(name, member.members[name], lineno=line,
                                              endlineno=line, parent=pkg))
