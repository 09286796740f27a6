{
  "targets": [
    {
      "target_name": "curvature_openblas",
      "sources": ["src/addon.cc"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "libraries": ["-lopenblas", "-llapacke"]
    }
  ]
}
