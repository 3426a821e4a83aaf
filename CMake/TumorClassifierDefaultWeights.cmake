# The default model's weights for the extension build.
#
# The development repository keeps them in Resources/Models/default/model.safetensors. The
# public repository leaves them out of its history (the Extensions Index wants a full clone
# under 100 MB; scripts/release.py --export-public makes that history), so the extension build
# downloads them once from the release, checks their sha256, and packages them: the installed
# extension then classifies with no network at all.
#
# Used with include() from CMakeLists.txt, or on its own:
#   cmake -DTUMORCLASSIFIER_SOURCE_DIR=... -DTUMORCLASSIFIER_WEIGHTS_URL=...
#         -DTUMORCLASSIFIER_WEIGHTS_SHA256=... -P CMake/TumorClassifierDefaultWeights.cmake

if(NOT TUMORCLASSIFIER_SOURCE_DIR)
  set(TUMORCLASSIFIER_SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
endif()
set(_tc_weights "${TUMORCLASSIFIER_SOURCE_DIR}/Resources/Models/default/model.safetensors")

if(NOT EXISTS "${_tc_weights}")
  if(NOT TUMORCLASSIFIER_WEIGHTS_URL)
    message(FATAL_ERROR "${_tc_weights} is missing and TUMORCLASSIFIER_WEIGHTS_URL is not set: "
                        "run scripts/release.py --write, or put the file there by hand")
  endif()
  set(_tc_partial "${_tc_weights}.part")
  file(DOWNLOAD "${TUMORCLASSIFIER_WEIGHTS_URL}" "${_tc_partial}" TLS_VERIFY ON
       STATUS _tc_status)
  list(GET _tc_status 0 _tc_code)
  if(NOT _tc_code EQUAL 0)
    file(REMOVE "${_tc_partial}")
    list(GET _tc_status 1 _tc_message)
    message(FATAL_ERROR "${TUMORCLASSIFIER_WEIGHTS_URL}: download of the default model's "
                        "weights failed (${_tc_message})")
  endif()
  file(SHA256 "${_tc_partial}" _tc_sha256)
  if(NOT _tc_sha256 STREQUAL TUMORCLASSIFIER_WEIGHTS_SHA256)
    file(REMOVE "${_tc_partial}")
    message(FATAL_ERROR "${TUMORCLASSIFIER_WEIGHTS_URL}: the downloaded weights have sha256 "
                        "${_tc_sha256}, not ${TUMORCLASSIFIER_WEIGHTS_SHA256}; nothing was kept")
  endif()
  file(RENAME "${_tc_partial}" "${_tc_weights}")
  message(STATUS "Downloaded the default model's weights (sha256 ${TUMORCLASSIFIER_WEIGHTS_SHA256})")
endif()
