/* A valid shared library that is not a chorus plugin: it exports one unrelated function and
 * neither chorus_plugin_abi_version nor chorus_plugin_descriptor. */
int not_a_chorus_plugin(int x) { return x + 1; }
