# Writes OUT: the push-constant block of SHADER as glslangValidator's reflection (-q) lays it out — its size and each
# active member's offset, in `namespace tme::push::NAME` — so that the C++ structs the kernels push can be held to
# it with static_asserts (vk_kernels.cc). Run as: cmake -DVALIDATOR=… -DSHADER=… -DNAME=… -DOUT=… -P push-constants.cmake
execute_process(
  COMMAND ${VALIDATOR} -V -q --target-env vulkan1.1 -o ${OUT}.spv ${SHADER}
  OUTPUT_VARIABLE reflection ERROR_VARIABLE errors RESULT_VARIABLE rc)
file(REMOVE ${OUT}.spv)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "glslangValidator -q ${SHADER} failed: ${errors}${reflection}")
endif()
string(REPLACE "\n" ";" lines "${reflection}")
set(size "")
set(members "")
foreach(line IN LISTS lines)
  if(line MATCHES "^P\\.([A-Za-z0-9_]+): offset ([0-9]+),")
    string(APPEND members "constexpr uint32_t ${CMAKE_MATCH_1} = ${CMAKE_MATCH_2};\n")
  elseif(line MATCHES "^P: offset -1, .*size ([0-9]+),")
    set(size ${CMAKE_MATCH_1})
  endif()
endforeach()
if(size STREQUAL "")
  message(FATAL_ERROR "${SHADER}: no push-constant block P in glslangValidator's reflection")
endif()
file(WRITE ${OUT}.tmp "// Generated from ${NAME}.comp by cmake/push-constants.cmake: do not edit.\n#pragma once\n#include <cstdint>\n\nnamespace tme::push::${NAME} {\nconstexpr uint32_t bytes = ${size};\n${members}}  // namespace tme::push::${NAME}\n")
file(RENAME ${OUT}.tmp ${OUT})
