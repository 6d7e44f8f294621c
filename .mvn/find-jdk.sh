# Sourced by ./samepage and ./mvnw (POSIX sh). Defines samepage_find_jdk, which prints the home of
# a JDK 25 or newer: JAVA_HOME if it is one, else the newest under /usr/lib/jvm, /opt/java and
# ~/.sdkman/candidates/java; prints nothing if there is none.

samepage_min_jdk=25
samepage_install_hint="needs a JDK $samepage_min_jdk or newer and found none (looked at JAVA_HOME, /usr/lib/jvm, /opt/java, ~/.sdkman); install one, e.g. 'apt-get install temurin-25-jdk' from Adoptium's repository"

# Prints the feature version (25 for "25.0.3") of the JDK at $1, or nothing if it is not a JDK.
samepage_jdk_feature() {
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] && [ -f "$1/release" ] || return 0
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release"
}

samepage_find_jdk() {
  if [ -n "${JAVA_HOME:-}" ]; then
    _f=$(samepage_jdk_feature "$JAVA_HOME")
    if [ -n "$_f" ] && [ "$_f" -ge "$samepage_min_jdk" ]; then
      echo "$JAVA_HOME"
      return 0
    fi
  fi
  _best=""
  _best_f=0
  for _c in /usr/lib/jvm/* /opt/java/* "${HOME:-/nonexistent}"/.sdkman/candidates/java/*; do
    [ -d "$_c" ] || continue
    _f=$(samepage_jdk_feature "$_c")
    if [ -n "$_f" ] && [ "$_f" -ge "$samepage_min_jdk" ] && [ "$_f" -gt "$_best_f" ]; then
      _best="$_c"
      _best_f="$_f"
    fi
  done
  echo "$_best"
}
