"""JupyterLab for the course, offline: `make lab` puts this folder on JUPYTER_CONFIG_PATH.

No news feed, no update check and no prompt asking for either; the settings
defaults for that live in ``lab-settings/overrides.json``.
"""

import os

c = get_config()  # noqa: F821 (Jupyter's config loader defines it)

c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.app_settings_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab-settings")
c.ServerApp.open_browser = False
