// Codex for Mattermost has no user interface of its own: /codex, its autocomplete and the buttons
// on Codex's posts are all rendered by Mattermost. This bundle only registers the plugin with the
// web and desktop apps, so that the server reports it as fully loaded. No build step is needed.
(function () {
    'use strict';

    var PLUGIN_ID = 'com.github.codex-for-mattermost';

    function CodexPlugin() {}
    CodexPlugin.prototype.initialize = function () {};
    CodexPlugin.prototype.uninitialize = function () {};

    window.registerPlugin(PLUGIN_ID, new CodexPlugin());
}());
