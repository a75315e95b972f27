"""Griffe extension of the documentation build: Sphinx roles in docstrings become links.

The docstrings use Sphinx's roles (``:func:`conv2d_backward```, ``:class:`numbaconv.Conv```),
which mkdocstrings does not read.  This extension rewrites each role into an *optional*
cross-reference: a link where the target is rendered somewhere on the site, plain code where
it is not (a private helper, say).  An optional reference never fails the strict build.

Targets are looked up as written, then in the scope of the documented object and in each of
its parents (class, module, package), the way a reader of the source would resolve them.
"""

from __future__ import annotations

import html
import re

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|mod|obj|data|exc|const):`(?P<tilde>~?)(?P<target>[^`<>]+?)`")


def _resolve(obj: griffe.Object, target: str, loader: griffe.GriffeLoader) -> str:
    """The full path of ``target`` as seen from ``obj``, or ``target`` if nothing matches."""
    target = target.lstrip(".")
    scopes = [obj if obj.is_class or obj.is_module else obj.parent]
    while scopes[-1] is not None and scopes[-1].parent is not None:
        scopes.append(scopes[-1].parent)
    candidates = [target] + [f"{scope.path}.{target}" for scope in scopes if scope is not None]
    for path in candidates:
        try:
            loader.modules_collection[path]
        except (KeyError, griffe.AliasResolutionError, ValueError):
            continue
        return path
    return target


def _rewrite(obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
    if obj.docstring is None:
        return

    def link(match: re.Match[str]) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        identifier = _resolve(obj, target, loader)
        return (f'<autoref identifier="{html.escape(identifier)}" optional>'
                f"<code>{html.escape(shown)}</code></autoref>")

    obj.docstring.value = ROLE.sub(link, obj.docstring.value)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: object
                   ) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            _rewrite(obj, loader)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
