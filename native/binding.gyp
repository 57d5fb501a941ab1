{
  "targets": [
    {
      "target_name": "dinotwins_native",
      "sources": ["src/addon.cc", "src/pool.cc", "src/dnnl_ops.cc", "src/norm_ops.cc", "src/elementwise.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++20", "-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp", "-fexceptions"],
      "libraries": ["-ldnnl", "-fopenmp"],
      "conditions": [
        ["OS=='linux' and target_arch=='x64'", { "cflags_cc": ["<!(echo ${DINOTWINS_NATIVE_MARCH:--march=native})"] }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++20",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off", "-Xpreprocessor", "-fopenmp"],
        "OTHER_LDFLAGS": ["-ldnnl", "-lomp"]
      }
    }
  ]
}
