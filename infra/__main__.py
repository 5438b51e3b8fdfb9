"""The Pulumi program (see its own issue); a stub that imports until then."""
