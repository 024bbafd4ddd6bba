"""Moving work between Pyro and NumPyro: portable params files, source export, porting.

Submodules are imported on first use (``dualguide.save_params`` and
``dualguide.load_params`` come from :mod:`dualguide.porting.params`), so this
package imports neither framework.
"""
