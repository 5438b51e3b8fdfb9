"""The Pulumi program of the platform: `pulumi up` from the repository root (Pulumi.yaml: main infra/).

- `declaration`: the step declarations (`functions/<step>/function.json`), validated;
- `settings`: the stack settings and their defaults;
- `source`: each function's source archive and its content-hash name;
- `components/`: the small components the program is built from;
- `program`: wires them together and exports the URLs.
"""
