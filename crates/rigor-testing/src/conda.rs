//! Conda environment files (`environment.yml`) read as pip requirements.
//!
//! The official SWE-bench images build some repositories' environments with
//! `conda env update -f environment.yml` (xarray's `ci/requirements/environment.yml`, say): the
//! project's optional test dependencies (bottleneck, cftime, netCDF4, zarr…) are there, and
//! the instances' `PASS_TO_PASS` tests need them. rigor has no conda: [`pip_requirements`] turns
//! the file's dependencies (and its `pip:` section) into pip requirement specifiers, conda names
//! mapped to their PyPI names, what PyPI has no counterpart for (the interpreter, C libraries,
//! compilers) left out. Installing them is [`crate::env`]'s business; this module only reads.

/// Conda package names whose PyPI distribution has another name.
const RENAMED: [(&str, &str); 9] = [
    ("matplotlib-base", "matplotlib"),
    ("dask-core", "dask"),
    ("netcdf4", "netCDF4"),
    ("iris", "scitools-iris"),
    ("pytables", "tables"),
    ("msgpack-python", "msgpack"),
    ("pyqt", "PyQt5"),
    ("python-graphviz", "graphviz"),
    ("pseudonetcdf", "PseudoNetCDF"),
];

/// Conda packages with no PyPI counterpart (the interpreter, libraries, compilers, tools that
/// PyPI names something else) or whose PyPI wheel cannot work without a conda-only library,
/// left out.
const CONDA_ONLY: [&str; 25] = [
    "python",
    "pip",
    "hdf5",
    "hdf4",
    "libnetcdf",
    "cdms2",
    "cdat_info",
    "esmpy",
    "eccodes",
    // Its PyPI wheel needs the ecCodes C library, which only conda brings: installed without it,
    // xarray's conftest fails on import.
    "cfgrib",
    "proj",
    "geos",
    "gdal",
    "pynio",
    "compilers",
    "c-compiler",
    "cxx-compiler",
    "fortran-compiler",
    "make",
    "pkg-config",
    "graphviz",
    "pandoc",
    "nodejs",
    "openblas",
    "mkl",
];

/// The pip requirement specifiers of a conda environment file's `dependencies` (conda packages
/// and the `pip:` list), in order, without duplicates: `name=1.2` and `name=1.2=build` become
/// `name==1.2`, other version constraints (`numpy<1.24`, `fsspec!=2021.7.0`) stay, comments and
/// channel prefixes (`conda-forge::`) go.
pub fn pip_requirements(yml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_dependencies = false;
    let mut dependencies_indent = 0;
    for raw in yml.lines() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let indent = line.len() - text.len();
        if !text.starts_with('-') && text.ends_with(':') {
            // A key: `dependencies:` opens the list, any other key at its level closes it.
            if text == "dependencies:" {
                in_dependencies = true;
                dependencies_indent = indent;
            } else if indent <= dependencies_indent {
                in_dependencies = false;
            }
            continue;
        }
        if !in_dependencies {
            continue;
        }
        let Some(item) = text.strip_prefix('-').map(str::trim) else {
            in_dependencies = indent > dependencies_indent;
            continue;
        };
        if item == "pip:" || item.is_empty() {
            continue;
        }
        let item = item.trim_matches(|c| c == '"' || c == '\'');
        let Some(requirement) = to_pip(item) else { continue };
        if !out.contains(&requirement) {
            out.push(requirement);
        }
    }
    out
}

/// One conda (or pip) dependency as a pip specifier, `None` for what PyPI does not have.
fn to_pip(item: &str) -> Option<String> {
    let item = item.rsplit("::").next().unwrap_or(item).trim();
    let end = item.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.[]".contains(c))).unwrap_or(item.len());
    let (name, rest) = item.split_at(end);
    let rest = rest.trim();
    if name.is_empty() || CONDA_ONLY.contains(&name.to_ascii_lowercase().as_str()) {
        return None;
    }
    let name = RENAMED.iter().find(|(conda, _)| conda.eq_ignore_ascii_case(name)).map_or(name, |(_, pypi)| pypi);
    let constraint = match rest.strip_prefix('=') {
        // conda's `=1.2` (a version prefix) and `=1.2=build`; not pip's `==`.
        Some(version) if !version.starts_with('=') => {
            let version = version.split('=').next().unwrap_or("").trim_end_matches(".*").trim_end_matches('*');
            if version.is_empty() { String::new() } else { format!("=={version}") }
        }
        _ => rest.replace(' ', ""),
    };
    Some(format!("{name}{constraint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of xarray's `ci/requirements/environment.yml` (shortened).
    const XARRAY: &str = "name: xarray-tests
channels:
  - conda-forge
  - nodefaults
dependencies:
  - bottleneck
  - cdms2
  - cfgrib
  - dask-core
  - fsspec!=2021.7.0
  - hdf5
  - lxml    # Optional dep of pydap
  - matplotlib-base
  - netcdf4
  - numpy<1.24
  - pip
  # - pynio: not compatible with netCDF4>1.5.3
  - conda-forge::pint=0.19
  - python=3.10
  - sparse=0.13.0=pyhd8ed1ab_0
  - pip:
    - numbagg
    - bottleneck
prefix: /opt/conda/envs/x
";

    #[test]
    fn conda_dependencies_become_pypi_requirements_and_conda_only_packages_are_left_out() {
        assert_eq!(
            pip_requirements(XARRAY),
            [
                "bottleneck",
                "dask",
                "fsspec!=2021.7.0",
                "lxml",
                "matplotlib",
                "netCDF4",
                "numpy<1.24",
                "pint==0.19",
                "sparse==0.13.0",
                "numbagg",
            ]
        );
    }

    #[test]
    fn channels_and_other_keys_are_not_dependencies() {
        assert!(pip_requirements("channels:\n  - conda-forge\nname: x\n").is_empty());
        assert_eq!(pip_requirements("dependencies:\n- toolz\nchannels:\n- defaults\n"), ["toolz"]);
    }
}
